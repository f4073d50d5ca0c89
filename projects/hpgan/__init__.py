"""HP-GAN: probabilistic 3D human motion prediction with a sequence-to-sequence GAN, its critic's features for
action recognition and a motion-quality network (Barsoum, Kender & Liu, arXiv 2012.15378; HP-GAN, CVPRW 2018,
arXiv 1711.09561)."""
