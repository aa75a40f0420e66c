"""Training of the built-in model: data pairs (``dataset``) and the loop (``train``)."""
