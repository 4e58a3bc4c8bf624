"""inferfleet's Ray Serve application package, shipped in the project's Ray Serve image.

- `inferfleet_serve.pipeline:build_app`: the builder the RayService manifests name for a service's pipeline
  application (components/manifests/ray_serve.py): the spec's stages in request order, then the model's
  application.
- `inferfleet_serve.stages`: the stages a spec can name (`Retriever`, `Reranker`) and the final `Generator`,
  which the pipeline adds itself.
- `inferfleet_serve.retrieval`: the pure ranking code the stages run (no Ray import), tested on its own.
"""
