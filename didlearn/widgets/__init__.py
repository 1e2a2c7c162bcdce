"""ipywidgets front-ends; each chapter has its own module;
callbacks are plain functions tested without a browser."""
