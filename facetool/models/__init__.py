"""GAN models every method plugin builds on: pix2pix and CycleGAN trainers."""
