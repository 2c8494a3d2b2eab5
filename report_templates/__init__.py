"""Jinja2 templates of the HTML report (installed as ``fairaudit.report_templates``)."""
