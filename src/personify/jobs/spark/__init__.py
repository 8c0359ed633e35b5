"""Training on Apache Spark (``personify train --engine spark``): the same ``ModelBundle`` as
``personify.jobs.training``, with the event-proportional work (reading, the privacy gate,
aggregation, popularity, the RP3beta item-item product, implicit ALS, per-person lists) done by
Spark. PySpark is imported only inside these modules' functions, so nothing else needs the
``spark`` extra."""
