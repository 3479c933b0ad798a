"""What a run or study leaves on disk and how people read it: the HDF5 recorder and
readers, figures, movies, ``inspect``, the generated parameter docs, and the progress bar a
run or study shows on the terminal meanwhile."""
