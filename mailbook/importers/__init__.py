"""`mailbook import --from postfixadmin|vmm`: move in from another tool's database.

Each reader (postfixadmin.py, vmm.py) reads its source in one REPEATABLE READ READ ONLY
snapshot and maps it into a Plan: the rows of `mailbook import`'s CSV format, each
naming the source object it came from, and the list of what cannot be carried over as it
was, each with its reason and what to do. The rows then go the way a CSV file goes:
COPY into import_staging, import_batch() checks them against the tables' own rules and
writes all or nothing (same checks, same audit). Nothing is dropped without a line in
the plan's list.
"""
# plan.py: the Plan and run(); postfixadmin.py and vmm.py: one reader per tool.
