"""Running the allocator: the sampler, the isolated workers, targets and models, and the
containment of the processes that run the allocator's code."""
