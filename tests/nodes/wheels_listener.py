"""Test node: receives N WheelsCmdStamped messages, prints 'GOT left right' for each, exits 0."""

import sys

import rclpy
from rclpy.node import Node

from redraw_msgs.msg import WheelsCmdStamped


def main():
    topic, count = sys.argv[1], int(sys.argv[2])
    rclpy.init()
    node = Node("wheels_listener")
    got = []

    def on_msg(msg):
        got.append(msg)
        print(f"GOT {msg.vel_left:.2f} {msg.vel_right:.2f}", flush=True)

    node.create_subscription(WheelsCmdStamped, topic, on_msg, 10)
    try:
        while rclpy.ok() and len(got) < count:
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
