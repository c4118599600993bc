"""Product recognition: a frozen MobileNet embedding + a logistic head, exported as one ONNX.

``train_classifier`` fits the head and writes a bundle (model, manifest, head data);
``evaluate_bundle`` scores a bundle with ONNX Runtime on a split; ``add_product`` adds a
class to a bundle from a few photos on the CPU. The command line is ``retail-export
classifier train|eval|add-product``.
"""

from model_export.classifier.errors import ClassifierError
from model_export.classifier.evaluate import EvalReport, evaluate_bundle
from model_export.classifier.products import add_product
from model_export.classifier.train import TrainResult, train_classifier

__all__ = [
    "ClassifierError",
    "EvalReport",
    "TrainResult",
    "add_product",
    "evaluate_bundle",
    "train_classifier",
]
