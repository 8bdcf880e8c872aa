// Doctors' weekly hours as people read them: the weekday, and the range of the clinic's wall
// clock in the hours' own time zone, exactly as the API gives them (no conversion to the
// reader's zone: 08:00 in Europe/Warsaw stays "08:00", labelled with its zone).

export const WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/** Minutes after local midnight as "HH:MM" (1440, the end of the day, is "24:00"). */
export function clock(minute) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(Math.floor(minute / 60))}:${pad(minute % 60)}`;
}

/** "08:00–12:00". */
export const timeRange = (hours) => `${clock(hours.start_minute)}–${clock(hours.end_minute)}`;
