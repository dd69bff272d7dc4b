"""``lrlab migrate``: find and fix the Keras 2 arguments that Keras 3 rejects or ignores.

The code is read with :mod:`ast` and never executed. Reported, with the exact
replacement:

- an optimizer call (``SGD``, ``Adam``, ``RMSprop``, ``Adagrad``, ``Adadelta``,
  ``Adamax``, ``Nadam``, ``AdamW``, ``Ftrl``, ``Lion``, ... as ``keras.optimizers.X``,
  ``optimizers.X``, ``tf.keras.optimizers.X`` or a bare ``X``) with

  - ``lr=``: Keras 3 raises ``ValueError: Argument(s) not recognized``; it is
    ``learning_rate=`` now (given both, Keras 2 used ``lr=``: ``learning_rate=`` goes);
  - ``decay=d``: Keras 3 only warns and trains *without* the decay. Keras 2 used
    ``lr / (1 + d * iterations)`` at every update; the replacement is
    ``learning_rate=lrlab.keras.legacy_decay(lr, d)``, which is that schedule exactly,
    whatever ``d`` is (a literal, a variable, an expression; a non-number fails loudly
    when the optimizer is built). ``decay=0`` (a literal zero) is simply dropped.
    Without an lr, the optimizer's Keras 3 default (= tf.keras 2's) is written out;
    when the lr may come from ``*args``/``**kwargs`` the call is left to fix by hand;

- ``Dense(..., init=...)`` (Keras 1; now ``kernel_initializer=``) and ``nb_epoch=`` in any
  call (Keras 1 ``fit``; now ``epochs=``): both raise on Keras 3.

Calls of optimizers imported from PyTorch, optax, JAX or MXNet (``torch.optim.SGD(lr=...)``,
``from torch.optim import SGD``) are left alone.

Fixes are edits of source spans (:mod:`lrlab.migrate.calls`): a keyword renamed, a value
wrapped, an argument deleted with its comma. Everything else, comments and layout
included, stays byte for byte; a deletion that would lose a comment is refused (fix by
hand). In a ``.py`` file that needs it, ``import lrlab.keras`` is added after the leading
imports. :func:`migrate_file` applies them in memory; ``Migration.diff()`` and
``Migration.write()`` show or write them.

Files. A ``.py`` file is parsed whole; the reported replacement is the call's source
line(s) with every fix on them applied. A Jupyter ``.ipynb`` is checked cell by cell the
same way (IPython ``%``/``!`` lines blanked), reported as ``FILE[cell N]:LINE:COL``, and
never rewritten. Any other file (``.txt``, ``.md``, a web page saved as text) is prose
with code inside, maybe flattened onto one line: every ``name(`` whose name is one
of the calls above is cut out up to its balanced ``)`` and parsed on its own as a Python
expression, after undoing markdown bold (``**False**``) and typographic quotes; the
replacement is then the call alone (a fix replaces the whole call). Prose that only
*mentions* ``lr=0.1`` outside a call is not reported. A snippet that still does not
parse but holds a legacy argument is reported with "fix by hand".

>>> [f.args for f in check_source("opt = SGD(lr=0.1, decay=1e-6, momentum=0.9)")]
[('lr', 'decay')]
>>> check_source("opt = SGD(lr=0.1, decay=1e-6, momentum=0.9)")[0].replacement
'opt = SGD(learning_rate=lrlab.keras.legacy_decay(0.1, 1e-6), momentum=0.9)'
"""

from lrlab.migrate.calls import KERAS3_DEFAULT_LR
from lrlab.migrate.rewrite import Migration, migrate_file, migrate_files
from lrlab.migrate.scan import Finding, check_file, check_files, check_source, check_text

__all__ = [
    "KERAS3_DEFAULT_LR",
    "Finding",
    "Migration",
    "check_file",
    "check_files",
    "check_source",
    "check_text",
    "migrate_file",
    "migrate_files",
]
