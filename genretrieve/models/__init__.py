"""Model code: locating weights, the frozen backbone, the teacher, the adapter, the encoder."""
