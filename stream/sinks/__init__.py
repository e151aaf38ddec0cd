"""The sinks: result files (:mod:`.files`), their names (:mod:`.outputs`) and drawing (:mod:`.annotate`)."""
