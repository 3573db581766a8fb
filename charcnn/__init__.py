"""The title model of MMCF: a character CNN (or the weaker character LSTM) over playlist titles."""
