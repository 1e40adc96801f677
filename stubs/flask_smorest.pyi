# flask-smorest ships no type information. Its abort is webargs' (typed, and it never returns);
# everything else it exports stays untyped.
from typing import Any

from webargs.flaskparser import abort as abort

def __getattr__(name: str) -> Any: ...
