"""The edge bundle: an int8 static student, its vocabulary and the top-N item vectors in one
folder that answers queries with nothing but onnxruntime and numpy (see :mod:`.query`)."""
