"""containers/: the images the pipeline runs in, as `make wheels` and `make fidelity` read
them. The runs themselves (venvs per image, steps, the container's serving stack) are
`make fidelity`, a CI job: too slow for the test suite."""

from pathlib import Path

from containers.fidelity import family_configs, install_plan
from containers.images import configured_images, load_images
from containers.wheels import wheel_project
from mlops.core.config import load_config
from mlops.core.graph import load_pipeline


def test_every_image_a_family_runs_on_is_described():
    """Whichever family config train.model picks, each step's image is in images.json."""
    cfg = load_config()
    images, names = load_images(), configured_images(cfg)
    configs = family_configs(cfg)
    assert [c.model_family.NAME for c in configs] == ["xgboost", "sklearn"]
    assert configs[0] is cfg  # the config's own family keeps its hyperparameters
    assert configs[1].train.hyperparameters == configs[1].model_family.defaults(cfg.task)
    used = set()
    for family_cfg in configs:
        pipe = load_pipeline(family_cfg)
        train = pipe.step(pipe.model_step)
        assert train.image == family_cfg.model_family.IMAGE
        used |= {step.image for step in pipe.steps}
    assert used == {"sklearn", "xgboost"}
    assert {names[image] for image in used} <= set(images), "add it to containers/images.json"
    for image in images.values():
        assert image.python.count(".") == 1 and image.packages and image.source


def test_install_plan_mirrors_the_image():
    image = load_images()["xgboost-3.2-0"]
    plain, no_deps, also = install_plan(image, [], None)
    assert "sagemaker-containers==2.8.6.post2" not in plain  # it pins an older Flask
    assert no_deps == ["--no-deps", "sagemaker-containers==2.8.6.post2"]
    assert f"xgboost=={image.packages['xgboost']}" in plain
    assert also == list(image.also)
    sklearn = load_images()["sklearn-1.9-0"]
    wheels, requirements = Path("/w"), Path("/steps/requirements.txt")
    *_, offline = install_plan(sklearn, [requirements], wheels)
    assert offline == ["--no-index", "--find-links", str(wheels), "-r", str(requirements)]


def test_both_images_carry_the_serving_stack_the_handler_answers_through():
    """endpoint_handler answers 4xx through sagemaker-containers' Worker: the family's image
    serves with it, whichever family that is."""
    for image in load_images().values():
        assert image.packages["sagemaker-containers"] == "2.8.6.post2", image.name
        assert "sagemaker-containers" in image.without_dependencies, image.name
        assert {"Flask", "Werkzeug"} <= set(image.packages), image.name
        assert ("sagemaker_containers/_mapping.py", "collections.Mapping", "collections.abc.Mapping") in image.patches  # fmt: skip


def test_wheel_names_map_to_their_project():
    assert wheel_project("pydantic_core-2.50.5-cp312-cp312-manylinux2014_x86_64.whl") == (
        "pydantic-core"
    )
    assert wheel_project("great_expectations-1.24.1-py3-none-any.whl") == "great-expectations"
