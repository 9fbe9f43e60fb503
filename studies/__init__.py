"""One-off studies behind figures in docs/ and models/*.md (not part of the node pack; each module's
docstring gives the command that made its figure). They load, degrade and score faces with
lpip_core.evaluation.evaluate's steps; tools/ holds the lasting developer tools."""
