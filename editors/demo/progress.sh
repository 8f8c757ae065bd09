#!/usr/bin/env bash
# A progress bar that redraws in place with \r, like a rollout watcher.
for i in 0 1 2 3 4 5 6 7 8 9 10; do
  bar=$(printf '%*s' "$i" '' | tr ' ' '#'); pad=$(printf '%*s' $((10 - i)) '')
  printf '\rrolling out web [%s%s] %3d%%' "$bar" "$pad" $((i * 10)); sleep 0.15
done
printf '\n\033[32m✔\033[0m done\n'
