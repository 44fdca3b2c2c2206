"""The course's experiments around a training run, beyond the run itself.

Each measures something a lesson reports, with the same models and training functions as the
rest of the package:

- `lr_find`: the learning-rate range test (lesson 03).
- `learning_curves`: test accuracy against training images per class, per strategy (lesson 05).
- `learning_rate_sweep`: cold and warm starts over a list of learning rates (lesson 05).
- `domain_distances`: how far a dataset's activations lie from ImageNet's, per layer (lesson 05;
  `tlkit.advise` reads them).

Example:

```python
curves = tlkit.experiments.learning_curves({"caltech": splits}, "mobilenet_0.25", sizes=[10, 40])
```
"""

from tlkit.advice import domain_distances
from tlkit.curves import Curves, learning_curves
from tlkit.range_test import RangeTest, lr_find
from tlkit.search import SweepRun, learning_rate_sweep

__all__ = ["Curves", "RangeTest", "SweepRun", "domain_distances", "learning_curves", "learning_rate_sweep", "lr_find"]
