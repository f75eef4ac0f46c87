from glob import glob

from setuptools import find_packages, setup

PACKAGE = "redraw_training"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={PACKAGE: ["configs.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="redraw developers",
    maintainer_email="redraw@example.org",
    description=open("package.xml").read().split("<description>")[1].split("</description>")[0],
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "convert-bags = redraw_training.cli.convert_bags:main",
            "pretrain = redraw_training.cli.pretrain:main",
            "calibrate = redraw_training.cli.calibrate:main",
            "evaluate = redraw_training.cli.evaluate:main",
            "export = redraw_training.cli.export:main",
            "rollout = redraw_training.cli.rollout:main",
            "finetune = redraw_training.cli.finetune:main",
            "compare = redraw_training.cli.compare:main",
        ],
    },
)
