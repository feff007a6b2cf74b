"""facetool plugin (work in progress, branch wip/cartoon): landmark-guided CartoonGAN (issue 7).

Built so far: the hair-conditioned generator and label-masked discriminator (:mod:`.net`), approach B's affine
landmark alignment (:mod:`.affine`) and approach A's landmark regressor (:mod:`.landmarks`, O-Net on the whole
crop; a 600-step fine-tune probe took held-out NME from 0.35 to 0.07 on cartoons, 0.10 to 0.03 on photos). Not yet:
regressor training command and weights, the trainer (cycle + hair + landmark + local discriminators), runner,
weights, evaluation; the plugin registers nothing until they exist."""
