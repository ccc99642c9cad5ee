"""torch ``nn.Module`` definitions only: the three methods, their shared parts and the backbones."""
