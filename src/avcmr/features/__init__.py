"""Feature front ends: log-mel patches, VGGish, InceptionV3, PCA and frame pooling."""
