#!/bin/bash
# A stand-in for a real simulation: "simulate.sh X" works for a few seconds and prints a
# result. Replace it with your program.
x=${1:?usage: simulate.sh PARAM}
sum=0
for i in $(seq 1 5); do sum=$((sum + i)); sleep 1; done
echo "simulate $x: result $sum"
