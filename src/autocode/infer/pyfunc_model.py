"""The registered model's code, logged as a script (MLflow's models from code).

MLflow stores a `PythonModel` object as a cloudpickle, which loading unpickles: bytes
that could run anything. Logged from this file instead, the model holds this script,
whose whole work is to name the class; the Coder itself is JSON and arrays.
"""

import mlflow

from autocode.infer.pyfunc import CoderPyfunc

mlflow.models.set_model(CoderPyfunc())
