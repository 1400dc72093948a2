"""Training: the cascade (generator, then refiner steps on what the generator really produces,
then upscaler on predicted frames) on (pose, person frame) pairs."""
