"""What a run or study leaves on disk and how people read it: the HDF5 recorder and
readers, figures, movies, ``inspect`` and the generated parameter docs."""
