"""Thesis part 3: quantized vocoders, what they save and what they cost.

``schemes`` turns a float32 vocoder into a quantized one (or says why it cannot);
``study`` measures and scores every (model, scheme), ``summary`` compares them, ``devices`` says
which small devices they fit.
"""
