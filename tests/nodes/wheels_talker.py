"""Test node: publishes WheelsCmdStamped with vel_left = i / 100, vel_right = -i / 100 at 20 Hz."""

import sys

import rclpy
from rclpy.node import Node

from redraw_msgs.msg import WheelsCmdStamped


class Talker(Node):
    def __init__(self, topic: str):
        super().__init__("wheels_talker")
        self.pub = self.create_publisher(WheelsCmdStamped, topic, 10)
        self.i = 0
        self.create_timer(0.05, self.tick)

    def tick(self):
        msg = WheelsCmdStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.vel_left = self.i / 100.0
        msg.vel_right = -self.i / 100.0
        self.pub.publish(msg)
        self.i = (self.i + 1) % 100


def main():
    rclpy.init()
    node = Talker(sys.argv[1])
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
