"""What works on finished runs: the sweep's job wrapper and its report, the study over
trained models, and the hyperparameter search (each run trains through ``gm.training``)."""
