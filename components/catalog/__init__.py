"""Facts the planner stands on: GPU chips, EC2 instance types, model architectures and AWS prices.

The facts live in `data/*.yaml`, each row with its source; this package only loads and types them.
"""

from components.catalog.loader import Catalog, CatalogModel, Gpu, InstanceType, load_catalog

__all__ = ["Catalog", "CatalogModel", "Gpu", "InstanceType", "load_catalog"]
