"""The README tour's package: `PYTHONPATH=. fairaudit check my_package.module:allocate`."""
