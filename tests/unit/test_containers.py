"""containers/: the images the pipeline runs in, as `make wheels` and `make fidelity` read
them. The runs themselves (venvs per image, steps, the container's serving stack) are
`make fidelity`, a CI job: too slow for the test suite."""

from pathlib import Path

from containers.fidelity import install_plan
from containers.images import configured_images, load_images
from containers.wheels import wheel_project
from mlops.core.config import load_config
from mlops.core.graph import build_graph


def test_every_image_the_config_names_is_described():
    cfg = load_config()
    images, names = load_images(), configured_images(cfg)
    assert set(names.values()) <= set(images), "add the image to containers/images.json"
    for step in build_graph(cfg).steps:
        assert step.name in images[names[step.image]].steps, step.name
    for image in images.values():
        assert image.python.count(".") == 1 and image.packages and image.source


def test_install_plan_mirrors_the_image():
    image = load_images()["xgboost-3.2-0"]
    plain, no_deps, also = install_plan(image, None)
    assert "sagemaker-containers==2.8.6.post2" not in plain  # it pins an older Flask
    assert no_deps == ["--no-deps", "sagemaker-containers==2.8.6.post2"]
    assert f"xgboost=={image.packages['xgboost']}" in plain
    assert also == list(image.also)
    sklearn = load_images()["sklearn-1.9-0"]
    wheels = Path("/w")
    *_, offline = install_plan(sklearn, wheels)
    assert offline[:3] == ["--no-index", "--find-links", str(wheels)]


def test_wheel_names_map_to_their_project():
    assert wheel_project("pydantic_core-2.50.5-cp312-cp312-manylinux2014_x86_64.whl") == (
        "pydantic-core"
    )
    assert wheel_project("great_expectations-1.24.1-py3-none-any.whl") == "great-expectations"
