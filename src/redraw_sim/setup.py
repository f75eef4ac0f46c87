from glob import glob

from setuptools import find_packages, setup

PACKAGE = "redraw_sim"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
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
            "collect = redraw_sim.collect:main",
            "twin_node = redraw_sim.twin_node:main",
            "explore_node = redraw_sim.explore_node:main",
            "teleop_node = redraw_sim.teleop_node:main",
            "drive_monitor = redraw_sim.drive_monitor:main",
            "sim2real = redraw_sim.sim2real:main",
        ],
    },
)
