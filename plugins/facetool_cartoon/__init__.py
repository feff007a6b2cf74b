"""facetool plugin (work in progress, branch wip/cartoon): landmark-guided CartoonGAN (issue 7).

Built so far: the hair-conditioned generator and label-masked discriminator (:mod:`.net`) and approach B's affine
landmark alignment (:mod:`.affine`). Not yet: landmark regressor, trainer, runner, weights, evaluation; the plugin
registers nothing until they exist."""
