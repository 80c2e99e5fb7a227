"""Reports: training logs -> curves and tables.

Public API: `vlmrl.report.curves.plot_curves`, `vlmrl.report.logs.read_log`,
`vlmrl.report.table.build_table`.
"""
