"""The boundary between the user and the model: what superpod accepts from files and options
and how it answers. One concept a module:

* ``files``   - reading input files (regular files only, bounded size) and writing outputs;
* ``jsonio``  - JSON in (bounded depth, strict numbers) and out (strict: no NaN / Infinity);
* ``options`` - command-line numbers: finite, in range, counts bounded;
* ``exits``   - the exit codes and the one-line report of an error.
"""
