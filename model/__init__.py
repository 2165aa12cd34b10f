"""The ConvLSTM nowcaster: cell, encoder-forecaster, training and inference (later issue)."""
