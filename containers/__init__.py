"""The SageMaker images the pipeline runs in: their Python and libraries (images.json),
the wheels a step needs that its image lacks (`make wheels`), and running the step
scripts and the serving handler under those versions (`make fidelity`)."""
