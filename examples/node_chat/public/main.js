// A small client of our own for the ported demo server (examples/node_chat.rs): the same
// events as the reference's page, without its looks.
const socket = io();
const $ = (id) => document.getElementById(id);
let username = null;
let typingSince = 0;
const typers = new Set();

function show(html, note) {
  const li = document.createElement("li");
  if (note) li.className = "note";
  li.append(...html);
  $("log").append(li);
  li.scrollIntoView();
}
const said = (user, text) => {
  const b = document.createElement("b");
  b.textContent = user;
  show([b, text]);
};
const note = (text) => show([text], true);
const count = (n) => note(n === 1 ? "there's 1 participant" : `there are ${n} participants`);
const showTyping = () => {
  $("typing").textContent = typers.size ? `${[...typers].join(", ")} typing…` : "";
};

$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  username = $("name").value.trim();
  if (!username) return;
  $("login").hidden = true;
  $("chat").hidden = false;
  $("text").focus();
  socket.emit("add user", username);
});

$("send").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  $("text").value = "";
  said(username, text);
  socket.emit("new message", text);
  socket.emit("stop typing");
  typingSince = 0;
});

$("text").addEventListener("input", () => {
  if (!typingSince) socket.emit("typing");
  typingSince = Date.now();
  setTimeout(() => {
    if (typingSince && Date.now() - typingSince >= 400) {
      socket.emit("stop typing");
      typingSince = 0;
    }
  }, 450);
});

socket.on("login", (data) => {
  note("Welcome to the chat");
  count(data.numUsers);
});
socket.on("new message", (data) => said(data.username, data.message));
socket.on("user joined", (data) => {
  note(`${data.username} joined`);
  count(data.numUsers);
});
socket.on("user left", (data) => {
  note(`${data.username} left`);
  count(data.numUsers);
  typers.delete(data.username);
  showTyping();
});
socket.on("typing", (data) => {
  typers.add(data.username);
  showTyping();
});
socket.on("stop typing", (data) => {
  typers.delete(data.username);
  showTyping();
});
socket.on("disconnect", () => note("you have been disconnected"));
socket.io.on("reconnect", () => {
  note("you have been reconnected");
  if (username) socket.emit("add user", username);
});
