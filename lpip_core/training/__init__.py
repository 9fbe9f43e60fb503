"""Learning from data: the patch stream of Algorithm 1 (`pairs`, with `augment`), Algorithm 1 itself
(`train`) and weight averaging of fine-tunes (`average`)."""
