"""The workbook's shared library: data, models, optimizer groups and schedules,
trainer, pretraining, results and plots. Notebooks configure and call it."""
