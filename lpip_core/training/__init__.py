"""Making and learning from data: the degradations that turn HQ faces into LQ faces (`degrade`),
the training set and its patch stream (`data`), Algorithm 1 (`train`)."""
