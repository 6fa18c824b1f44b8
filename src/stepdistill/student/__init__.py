"""The student: models, features, the two-task loss, training and inference."""
