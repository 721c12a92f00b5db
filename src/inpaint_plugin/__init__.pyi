# Type stub of the package root: the lazily imported names are listed here for type checkers/IDEs.
from ._api import inpaint as inpaint
from ._api import iter_inpaint as iter_inpaint
from ._backend import Backend as Backend
from ._backend import Param as Param
from ._dask import stream_inpaint as stream_inpaint
from ._detect import detect as detect
from ._evaluate import evaluate as evaluate
from ._io import read_image as read_image
from ._io import read_metadata as read_metadata
from ._io import write_image as write_image
from ._metadata import ImageMetadata as ImageMetadata
from ._registry import get_backend as get_backend
from ._registry import register as register
from ._registry import unregister as unregister
from .hookspecs import hookimpl as hookimpl
from .training import TrainConfig as TrainConfig
from .training import train as train

__version__: str

def methods() -> dict[str, Backend]: ...
