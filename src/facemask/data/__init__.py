"""The photos: index, folds, faces, the image cache, loaders, augmentation, the demo data set."""
