"""The registered model's code, logged as a script (MLflow's models from code).

MLflow stores a `PythonModel` object as a cloudpickle, which loading unpickles: opaque
bytes, tied to the Python and cloudpickle versions that wrote them. Logged from this
file instead, the model holds this script, which loading runs: code anyone can read,
whose whole work is to name the installed autocode's class. The Coder itself is JSON
and arrays.
"""

import mlflow

from autocode.infer.pyfunc import CoderPyfunc

mlflow.models.set_model(CoderPyfunc())
