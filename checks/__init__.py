"""The checks shipped with fairaudit, one module per property (installed as
``fairaudit.checks``). Each module defines one or more :class:`fairaudit.check.Check`
subclasses; :func:`fairaudit.check.discover` finds them."""
