"""Device profiles: measuring compiled artifacts on a device, and the file format that holds it."""
