"""Data: the datasets (embedded synthetic shapes, image folders, local CIFAR), folder scanning, the
opt-in pre-shrunk copy, the recipe's transforms, decoding on the device, and the loaders that feed
it. Knows nothing of tasks or training: the trainer asks it for datasets and loaders."""
